import sys
from pathlib import Path

# Make the system-contract test helpers importable as `sysc_helpers`.
sys.path.insert(0, str(Path(__file__).parent))
