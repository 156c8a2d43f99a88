from components.example_gen.component import CaptchaExampleGen, CsvExampleGen, ImageExampleGen

__all__ = ["CaptchaExampleGen", "CsvExampleGen", "ImageExampleGen"]
