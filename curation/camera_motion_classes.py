"""The report's 14 camera-motion classes and the project's operational definition of each.

The report's names are loose ("pan" and "tilt" overlap), so VideoFoundry defines each class by
the image motion a camera move produces, for a scene at one depth (the demo corpus renders
exactly these geometries over real photos, so its labels follow the definitions by construction):

- pan left/right/up/down: the camera *translates* parallel to the image plane; the whole image
  shifts uniformly (every pixel has the same flow), content moving opposite to the camera.
- tilt left/right/up/down: the camera *rotates* in place (yaw for left/right, pitch for up/down);
  the image shifts and also keystones (perspective), so flow is not uniform across the frame.
- zoom in/out: focal length changes; flow points radially out of (in) / into (out) the frame
  centre with magnitude proportional to the distance from the centre.
- around left/right: the camera orbits the subject at the frame centre, moving left/right while
  turning to keep it centred; the centre stays put while the two sides move in opposite depth
  (one side grows, the other shrinks).
- static shot: no camera motion (mean flow below the static threshold).
- handheld shot: small, irregular translation and roll that changes direction within a second.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

CameraMotion = Literal[
    "zoom in",
    "zoom out",
    "pan up",
    "pan down",
    "pan left",
    "pan right",
    "tilt up",
    "tilt down",
    "tilt left",
    "tilt right",
    "around left",
    "around right",
    "static shot",
    "handheld shot",
]

# The 14 classes in the report's order, for iteration and validation.
CAMERA_MOTIONS: Final[tuple[CameraMotion, ...]] = get_args(CameraMotion)
