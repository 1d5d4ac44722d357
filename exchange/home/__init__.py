"""Each role's own first screen (`/home`) and the navigation's live counts."""
