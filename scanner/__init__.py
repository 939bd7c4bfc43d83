"""camsweep: find face-capture cameras on store networks and the clouds they upload to."""

__version__ = "0.1.0"
