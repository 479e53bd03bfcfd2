/** The one error type of the weight-file layer: a bad file, named, with what is wrong with it. */
export class FormatError extends Error {
  /** The file (path or in-memory name) the fault was found in. */
  readonly file: string;
  /** What is wrong, without the file name. */
  readonly fault: string;

  constructor(file: string, fault: string) {
    super(`${file}: ${fault}`);
    this.name = 'FormatError';
    this.file = file;
    this.fault = fault;
  }
}
