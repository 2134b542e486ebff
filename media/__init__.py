"""The bottom layer: media and infrastructure every package shares, importing nothing of ours.

- `media.video`: seek-based clip reading and the one deterministic H.264 writer;
- `media.tables`: atomic Parquet table I/O (single files and partitioned folders) with schema checks;
- `media.ray_cluster`: starting a local Ray instance or joining a cluster by address;
- `media.image_quality`: per-frame technical quality (OpenCV BRISQUE) and the aesthetic stand-in.
"""
