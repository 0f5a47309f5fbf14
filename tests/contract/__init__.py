"""The backend contract suite: what every backend must do, seen through base/backend.py only."""
