"""The backend contract suite: what every backend must do, seen through backends/base.py only."""
