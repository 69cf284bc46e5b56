//! The `data` stage: from files on disk (or a download) to batches of tensors
//! on the run's device. (Being written: Jena, IMDB, windowing, downloads.)
