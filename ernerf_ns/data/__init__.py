"""Reading ER-NeRF dataset folders into Nerfstudio."""
