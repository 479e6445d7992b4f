"""videostyle: flicker-free artistic style transfer for video (Gatys et al. 2016, Ruder et al. 2016/2018)."""

__version__ = "0.2.0"
