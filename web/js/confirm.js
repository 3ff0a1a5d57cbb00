/**
 * A button that acts only on a second click within a few seconds of the first: for the judge's
 * irreversible commands (eject, end the hearing). The first click arms it and changes its label to ask
 * for the second; left alone, it disarms itself. Not `window.confirm()`: that blocks the page (media
 * events, the signaling socket's handlers, automated tests) and reads poorly on a courtroom screen.
 */

/** How long an armed button waits for its second click. */
export const CONFIRM_MS = 3000;

export class TwoStepButton {
  /**
   * @param {HTMLButtonElement} button
   * @param {object} options
   * @param {() => void} options.onConfirm the second click
   * @param {(armed: boolean) => void} options.render sets the button's label for either step
   * @param {number} [options.ms]
   */
  constructor(button, { onConfirm, render, ms = CONFIRM_MS }) {
    this.button = button;
    this.onConfirm = onConfirm;
    this.renderLabel = render;
    this.ms = ms;
    this.timer = null;
    button.addEventListener("click", () => this.#click());
    this.refresh();
  }

  get armed() {
    return this.timer !== null;
  }

  /** Back to the first step (time out, the target went away, the control was hidden). */
  disarm() {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.refresh();
  }

  /** Re-apply the label (language switch, a name changed). */
  refresh() {
    if (this.armed) this.button.dataset.confirming = "true";
    else delete this.button.dataset.confirming;
    this.renderLabel(this.armed);
  }

  #click() {
    if (this.button.disabled) return;
    if (this.armed) {
      this.disarm();
      this.onConfirm();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, this.ms);
    this.refresh();
  }
}
