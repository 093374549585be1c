import sys

from acecoder_rl.cli.app import main

sys.exit(main())
