"""Distilling pruned traces into a student with TRL's SFTTrainer (`drp distill`).

A recipe is a YAML file over TRL's own config classes (SFTConfig, ModelConfig, ScriptArguments) plus
`DistillArguments`; any key can be overridden on the command line as `--key value`:

    drp distill --recipe smollm2-135m-cpu --dataset_name exports/demo --output_dir students/demo

Multi-GPU (one process per GPU; DeepSpeed/FSDP are accelerate settings, not ours):

    accelerate launch --config_file distill/accelerate/multi_gpu.yaml -m drp.distill.sft \\
        --recipe r1-distill-qwen-7b-lora --dataset_name exports/gsm8k

Modules: `config` (parser, recipes, precision), `data` (loading, rendering, length and label checks),
`callbacks` (loss plot), `merge` (LoRA → standalone model), `sft` (the training script).
"""
