"""Checks for the lessons' exercises, one module per lesson: one line saying right, or a hint about what is wrong.

A check recomputes the answer its own way and compares; it raises AssertionError with a hint when the
answer is wrong, so that a wrong answer stops the notebook where it happened. The notebooks call them
as `exercises.check_...`; student copies put `TODO` where an answer goes.
"""

from helpers.exercises.common import TODO
from helpers.exercises.lesson00 import check_zero_fraction, check_brightest_class
from helpers.exercises.lesson01 import check_normalisation, check_class_folders, check_stratified_split
from helpers.exercises.lesson02 import check_conv_arithmetic, check_top_k_accuracy, check_most_confused
from helpers.exercises.lesson03 import check_bce_with_logits_grad, check_tanh_layer_backward, check_avg_pool_backward
from helpers.exercises.lesson04 import check_nesterov_step, check_warmup_cosine, check_kaiming_conv
from helpers.exercises.lesson05 import check_freeze_all_but_last_stage, check_layerwise_groups
from helpers.exercises.lesson06 import check_occlusion, check_integrated_gradients
from helpers.exercises.lesson07 import check_linear_scaling, check_accumulated_step
from helpers.exercises.lesson08 import check_causal_mask, check_sinusoidal, check_masked_attention
from helpers.exercises.lesson09_10 import check_warmup_then_linear, check_apply_80_10_10, check_frequency_cross_entropy, check_adamw_state_bytes
from helpers.exercises.lesson11 import check_top_p_keep, check_trigram_held_out_loss, check_attend_with_cache

__all__ = ['TODO', 'check_zero_fraction', 'check_brightest_class', 'check_normalisation', 'check_class_folders', 'check_stratified_split', 'check_conv_arithmetic', 'check_top_k_accuracy', 'check_most_confused', 'check_bce_with_logits_grad', 'check_tanh_layer_backward', 'check_avg_pool_backward', 'check_nesterov_step', 'check_warmup_cosine', 'check_kaiming_conv', 'check_freeze_all_but_last_stage', 'check_layerwise_groups', 'check_occlusion', 'check_integrated_gradients', 'check_linear_scaling', 'check_accumulated_step', 'check_causal_mask', 'check_sinusoidal', 'check_masked_attention', 'check_warmup_then_linear', 'check_apply_80_10_10', 'check_frequency_cross_entropy', 'check_adamw_state_bytes', 'check_top_p_keep', 'check_trigram_held_out_loss', 'check_attend_with_cache']
