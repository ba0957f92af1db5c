"""Fields: tri-plane hash encoding, audio encoder, region attention, head and torso fields."""
