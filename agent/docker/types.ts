// Shapes the pull's parts share with those who show a pull (the bake, its
// renderers): kept below all of them, so that none imports the stream parser
// for a type.

/** A pull's progress, as POST /images/create's stream tells it. */
export interface Progress {
  /** Bytes downloaded and to download, across layers; 0 / 0 where the engine hides the counts. */
  current: number;
  total: number;
  layers: number;
  /**
   * Layers whose size is known (a `Downloading` line gave it, or the layer is already
   * downloaded or present): the engine sizes a layer only when it starts downloading it,
   * a few at a time, so `total` is the whole pull's only once this equals `layers`.
   */
  layersSized: number;
  layersDownloaded: number;
  /** Unpacked (`Pull complete`, `Already exists`). */
  layersDone: number;
}
