"""The htmx pages: full pages for a normal request, the fragment for an htmx one."""
