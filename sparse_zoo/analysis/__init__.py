"""The paper's analyses: frequency attenuation, Fourier sensitivity, kernel maps and Grad-CAM."""
from .gradcam import default_target_layer, gradcam
from .plots import plot_attenuation, plot_fourier_heatmaps, plot_gradcam, plot_kernel_maps
from .spatial import kernel_maps
from .spectral import filter_frequencies, fourier_basis, fourier_heatmap, frequency_attenuation, frequency_mask

__all__ = [
    "default_target_layer", "filter_frequencies", "fourier_basis", "fourier_heatmap", "frequency_attenuation",
    "frequency_mask", "gradcam", "kernel_maps", "plot_attenuation", "plot_fourier_heatmaps", "plot_gradcam",
    "plot_kernel_maps",
]
