import sys

from image_build.cli import main

sys.exit(main(sys.argv[1:]))
