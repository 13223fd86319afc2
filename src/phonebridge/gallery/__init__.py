"""The phone's gallery: media index, image headers (EXIF) and thumbnails.

`Gallery` (gallery.py) is what the daemon exposes as `daemon.gallery`; `exif.py` is the sans-I/O
header parser; `thumbnails.py` makes thumbnails with Pillow and caches them on disk.
"""

from .gallery import Gallery
from .thumbnails import PhotoError, ThumbnailCache

__all__ = ["Gallery", "PhotoError", "ThumbnailCache"]
