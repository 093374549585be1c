#!/usr/bin/env bash
# Start the head node of a Ray cluster for `acecoder-rl train` (workers join it with ray_worker.sh).
#
#   launch/ray_head.sh [extra `ray start` options]
#   then: acecoder-rl train CONFIG --address http://HEAD:8265   (or launch/submit.sh CONFIG)
#
# Environment (all optional):
#   RAY_PORT            port the workers join on (GCS)                                [6379]
#   RAY_DASHBOARD_PORT  dashboard + Jobs API port (the --address of acecoder-rl train) [8265]
#   RAY_NODE_IP         this node's address as the other nodes reach it              [Ray picks one]
#   RAY_NUM_CPUS, RAY_NUM_GPUS  resources to advertise                                [detected]
#   RAY_TEMP_DIR        Ray's session and log directory                              [/tmp/ray]
#   RAY_BLOCK=1         stay in the foreground until Ray stops (under srun or in a container)
#
# Network for the trainer's collectives. Ray processes, and so every trainer process, inherit this
# script's environment: export these before starting Ray, on every node, with the same values.
#   NCCL_SOCKET_IFNAME  interface NCCL bootstraps over, e.g. eth0, ib0, or ^lo,docker0 to exclude some
#   GLOO_SOCKET_IFNAME  the same for Gloo (torch.distributed CPU groups, DeepSpeed set-up)
#   NCCL_IB_DISABLE=1   no InfiniBand/RoCE (or broken): NCCL falls back to TCP sockets
#   NCCL_IB_HCA         which HCAs to use, e.g. mlx5_0,mlx5_1
#   NCCL_DEBUG=INFO     NCCL diagnostics. Set it here, never in a run config's resources.env_vars:
#                       OpenRLHF's ray.init sets NCCL_DEBUG too, and Ray refuses a job whose runtime env
#                       sets the same variable (likewise TOKENIZERS_PARALLELISM).
set -euo pipefail

args=(--head
      --port="${RAY_PORT:-6379}"
      --dashboard-host=0.0.0.0
      --dashboard-port="${RAY_DASHBOARD_PORT:-8265}")
if [[ -n "${RAY_NODE_IP:-}" ]]; then args+=(--node-ip-address="$RAY_NODE_IP"); fi
if [[ -n "${RAY_NUM_CPUS:-}" ]]; then args+=(--num-cpus="$RAY_NUM_CPUS"); fi
if [[ -n "${RAY_NUM_GPUS:-}" ]]; then args+=(--num-gpus="$RAY_NUM_GPUS"); fi
if [[ -n "${RAY_TEMP_DIR:-}" ]]; then args+=(--temp-dir="$RAY_TEMP_DIR"); fi
if [[ "${RAY_BLOCK:-0}" == 1 ]]; then args+=(--block); fi

exec ray start "${args[@]}" "$@"
