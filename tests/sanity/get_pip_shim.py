"""Stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py).

ansible-test downloads that script from ci-files.testing.ansible.com, which our machines cannot
reach; its error message says to save the script in ~/.ansible/test/cache/ instead. This shim does
the same job from what we can reach: it bootstraps pip with the interpreter's own ensurepip, then
installs the exact packages ansible-test asked for (e.g. pip==24.2) from PyPI.
"""
import subprocess
import sys

# get-pip.py's own options; plain pip does not know them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip.bootstrap() sets PIP_CONFIG_FILE=/dev/null in its own process,
# which would hide the machine's pip configuration (CA bundle, index) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
