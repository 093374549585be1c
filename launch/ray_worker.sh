#!/usr/bin/env bash
# Join this node to a Ray head started by ray_head.sh.
#
#   launch/ray_worker.sh HEAD_IP:PORT [extra `ray start` options]     (PORT: the head's RAY_PORT, 6379)
#
# Environment (all optional): RAY_NODE_IP, RAY_NUM_CPUS, RAY_NUM_GPUS, RAY_BLOCK=1 as in ray_head.sh, and
# the same NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME / NCCL_IB_DISABLE / NCCL_IB_HCA / NCCL_DEBUG as the head
# (see ray_head.sh): the trainer processes on this node inherit them from here.
set -euo pipefail

head=${1:?usage: launch/ray_worker.sh HEAD_IP:PORT [ray start options]}
shift

args=(--address="$head")
if [[ -n "${RAY_NODE_IP:-}" ]]; then args+=(--node-ip-address="$RAY_NODE_IP"); fi
if [[ -n "${RAY_NUM_CPUS:-}" ]]; then args+=(--num-cpus="$RAY_NUM_CPUS"); fi
if [[ -n "${RAY_NUM_GPUS:-}" ]]; then args+=(--num-gpus="$RAY_NUM_GPUS"); fi
if [[ "${RAY_BLOCK:-0}" == 1 ]]; then args+=(--block); fi

exec ray start "${args[@]}" "$@"
