"""Small extension modules the extension tests load by file path and by module name."""
