"""linli (邻里): an open smart-community platform for property-management companies."""

__version__ = "0.1.0"
