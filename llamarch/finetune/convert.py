"""GGUF -> MLX conversion, as the finetune API names it.

The converter lives in `llamarch.mlx_convert`, below the engines, since the MLX engine
converts a GGUF model on first use; the base identity lives in `llamarch.identity`.
"""

from ..identity import SUPPORTED_ARCHITECTURES, BaseIdentity
from ..mlx_convert import convert_gguf, mlx_model_dir

__all__ = ["SUPPORTED_ARCHITECTURES", "BaseIdentity", "convert_gguf", "mlx_model_dir"]
