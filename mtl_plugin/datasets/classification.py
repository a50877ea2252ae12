"""Classification datasets: generated single-object images and COCO instance crops.

Placeholder: filled in by the work on issue 5."""
