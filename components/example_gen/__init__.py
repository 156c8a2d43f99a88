from components.example_gen.component import CaptchaExampleGen, CsvExampleGen, IdxExampleGen, ImageExampleGen

__all__ = ["CaptchaExampleGen", "CsvExampleGen", "IdxExampleGen", "ImageExampleGen"]
