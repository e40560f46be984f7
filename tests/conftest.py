import sys
from pathlib import Path

# Make the shared hypothesis strategies importable as `strategies` from any test folder.
sys.path.insert(0, str(Path(__file__).parent))
