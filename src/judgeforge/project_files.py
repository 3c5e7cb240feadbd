"""The files of the Kedro project that judgeforge carries as package data (no imports: setup.py reads this file).

Paths are relative to the repository root. setup.py copies each into the wheel under
`judgeforge/project_files/` (same relative path), so an installed judgeforge finds its default
conf/ there and `judgeforge init` has a run YAML and a seed file to write.
"""

PACKAGED_FOLDER = "project_files"
CONF = "conf"
EXAMPLE_RUN_YAML = "examples/binary_single_customer_complaint.yaml"
SEED_FILE = "data/01_raw/customer_messages.csv"
PROJECT_FILES = (CONF, EXAMPLE_RUN_YAML, SEED_FILE)
# Never packaged: a machine's own credentials (conf/local/credentials.yml is git-ignored too).
LOCAL_SECRETS = "conf/local/credentials.yml"
