"""The class colours every picture, the GIF's palette and the site's legend share (one list)."""

#: Class colours: Petroff's 10-colour sequence (M. A. Petroff, "Accessible Color Sequences for
#: Data Visualization", 2021; matplotlib's ``petroff10`` style), chosen in a survey to stay
#: distinguishable under the common colour-vision deficiencies; then, for classes 10-19, ten of
#: Kelly's colours of maximum contrast (K. L. Kelly, 1965), each picked in turn as the one
#: farthest in CIELAB from all colours before it. The closest pair of the twenty is as far
#: apart as Petroff's own closest pair (CIE76 delta-E 19.3).
#: Fallback beyond 20 classes: class ``k`` takes colour ``k % 20`` (colours repeat), and the
#: legend says so.
CLASS_COLOURS = (
    "#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6",
    "#a96b59", "#e76300", "#b9ac70", "#717581", "#92dadd",
    "#8db600", "#008856", "#875692", "#2b3d26", "#b3446c",
    "#882d17", "#dcd300", "#e68fac", "#f99379", "#be0032",
)
#: Points of a trial without labels: one colour, the first of the palette.
UNLABELLED_COLOUR = CLASS_COLOURS[0]


def class_colour(k: int) -> str:
    """Colour (hex) of class index ``k``; colours repeat after twenty classes (see CLASS_COLOURS).

    A negative ``k`` (-1: how frame files mark a point without a label) is UNLABELLED_COLOUR.
    """
    return UNLABELLED_COLOUR if int(k) < 0 else CLASS_COLOURS[int(k) % len(CLASS_COLOURS)]
