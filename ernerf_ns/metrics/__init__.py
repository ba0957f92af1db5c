"""Image metrics beyond PSNR: LPIPS (lips-stage loss and eval) and mouth landmark distance (lip sync)."""
