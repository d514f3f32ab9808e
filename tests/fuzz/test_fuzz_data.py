"""load_dataset, AttackResult/Curve save and load with corrupted files, and imaging."""

from ._gen_files import dataset_loads, image_loads, png_roundtrips, result_loads
from ._suite import fuzz_pair

test_load_dataset, test_load_dataset_long = fuzz_pair(dataset_loads(), "load_dataset", examples=30)
test_result_load, test_result_load_long = fuzz_pair(result_loads(), "result_load", examples=40)
test_load_image, test_load_image_long = fuzz_pair(image_loads(), "load_image", examples=30)
test_png, test_png_long = fuzz_pair(png_roundtrips(), "png", examples=30)
