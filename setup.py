"""Packaging for acecoder-rl.

Core install = what runs on a CPU machine (data pipeline, reward engine, CLI, local training stack).
GPU-cluster pieces sit behind extras because they cannot be built without CUDA (OpenRLHF hard-requires
flash-attn). Install ``torch==2.13.0`` first or in the same pip command so that pip does not pull a CUDA
build of torch on CPU machines.
"""
from setuptools import find_packages, setup

# OpenRLHF 0.11.2's own pins, checked to resolve together.
TRANSFORMERS = "transformers==5.15.0"
DATASETS = "datasets==5.2.0"
TRL = "trl==1.16.0"
RAY = "ray[default]==2.55.0"
DEEPSPEED = "deepspeed==0.19.6"
VLLM = "vllm==0.29.0"

setup(
    name="acecoder-rl",
    version="0.1.0",
    description="Reinforcement-learning fine-tuning of code LLMs with sandboxed test-based rewards (AceCode-87K).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # `tests` is deliberately excluded: the openrlhf wheel installs a top-level `tests` package too.
    packages=find_packages(include=["acecoder_rl", "acecoder_rl.*"]),
    include_package_data=True,
    package_data={"acecoder_rl.data": ["resources/*", "resources/*/*"]},
    install_requires=[
        "torch>=2.4",
        TRANSFORMERS,
        DATASETS,
        "numpy>=1.24",
        "pyarrow>=14",
        "pydantic>=2.6",
        "pyyaml>=6",
        "click>=8.1",
        "rich>=13",
        "matplotlib>=3.7",
        # `acecoder-rl report` reads OpenRLHF's TensorBoard event files (and torch's SummaryWriter needs it)
        "tensorboard>=2.14",
        "pyseccomp>=0.1.2; sys_platform == 'linux'",
        # the HTTP reward service (`acecoder-rl serve`) and its client
        "starlette>=0.37",
        "uvicorn>=0.30",
        "httpx>=0.27",
        "prometheus-client>=0.20",
    ],
    extras_require={
        "train": ["openrlhf==0.11.2", RAY, DEEPSPEED, TRL],
        "vllm": [VLLM],
        # ray: tests/reward/test_ray_pool.py; trl, aiohttp, pylatexenc: tests/integrations (OpenRLHF itself is
        # installed with `pip install --no-deps openrlhf==0.11.2`: its own requirements include flash-attn)
        "dev": ["pytest>=8", "pytest-timeout>=2.3", RAY, TRL, "aiohttp>=3.9", "pylatexenc>=2.10"],
    },
    entry_points={"console_scripts": ["acecoder-rl=acecoder_rl.cli.app:main"]},
    classifiers=["Programming Language :: Python :: 3", "Operating System :: POSIX :: Linux"],
)
