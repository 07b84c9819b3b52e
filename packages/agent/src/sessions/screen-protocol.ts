// Messages between the main thread and the screen-model workers.

export type ToScreenWorker =
  | { t: 'open'; id: number; cols: number; rows: number; scrollback: number }
  | { t: 'data'; id: number; bytes: Uint8Array }
  | { t: 'resize'; id: number; cols: number; rows: number }
  | { t: 'snapshot'; id: number; req: number; minOffset: number; scrollback: number }
  | { t: 'history'; id: number; req: number; before: number | null; lines: number }
  | { t: 'close'; id: number };

export type FromScreenWorker =
  | { t: 'ack'; id: number; bytes: number }
  | {
      t: 'snapshot';
      id: number;
      req: number;
      data: Uint8Array;
      offset: number;
      cols: number;
      rows: number;
    }
  | { t: 'history'; id: number; req: number; total: number; from: number; lines: string[] };
