#!/usr/bin/env python
"""Django's command-line utility for the stream_analysis demo."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The repository root holds the stream_analysis and actors packages.
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
