"""Pictures in and out: image decoding and conversion, masks, exports, chart data, training uploads."""
