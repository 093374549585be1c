#!/usr/bin/env bash
# Submit a run config to a running Ray cluster and follow its logs until it ends.
#
#   launch/submit.sh CONFIG [--resume] [--dry-run]
#
# RAY_ADDRESS: the head's dashboard, http://HEAD:8265 [http://127.0.0.1:8265, i.e. run this on the head].
# The reward plug-in and the prepared data travel with the job; a reward service the config asks for
# (reward.service.start) is started here, on the submitting machine, for the length of the run, so the
# nodes must reach this machine. Ctrl-C stops the job. Exit status: 0 when the job succeeded.
set -euo pipefail

config=${1:?usage: launch/submit.sh CONFIG [--resume] [--dry-run]}
shift

exec "${PYTHON:-python3}" -m acecoder_rl train "$config" --address "${RAY_ADDRESS:-http://127.0.0.1:8265}" "$@"
