"""Adapting a trained model: fine-tuning with LoRA, instruction data, distillation and DPO.

One concept a module:

- ``lora``: ``LoRALinear``, ``apply_lora``, merging and unmerging (the reference of day 34);
- ``lora_files``: ``save_lora`` / ``load_lora``, adapter-only files, checked before loading;
- ``instruct``: instruction templates with the prompt masked out of the loss;
- ``distill``: ``distillation_loss`` (softened targets, the T^2 scaling);
- ``dpo``: ``dpo_loss`` and the sequence log-probabilities it needs;
- ``settings``: the one rule for scalar settings (finite and > 0), shared by the three above.
"""

from llmcourse.finetune.distill import distillation_loss, soften
from llmcourse.finetune.dpo import dpo_loss, sequence_logps
from llmcourse.finetune.instruct import (DEFAULT_TEMPLATE, IGNORE_INDEX, collate_examples,
                                         encode_example, format_prompt)
from llmcourse.finetune.lora import (LoRALinear, apply_lora, count_parameters, lora_modules,
                                     merge_lora, unload_lora, unmerge_lora)
from llmcourse.finetune.lora_files import load_lora, lora_state_dict, save_lora

__all__ = [
    "DEFAULT_TEMPLATE", "IGNORE_INDEX", "LoRALinear", "apply_lora", "collate_examples",
    "count_parameters", "distillation_loss", "dpo_loss", "encode_example", "format_prompt",
    "load_lora", "lora_modules", "lora_state_dict", "merge_lora", "save_lora",
    "sequence_logps", "soften", "unload_lora", "unmerge_lora",
]
