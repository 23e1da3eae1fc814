"""The site's date formats (settings.FORMAT_MODULE_PATH), per language as Django looks them up: `en` only."""
