/**
 * The one place the browser code imports its UI library: preact (3 KB gzipped, a React-compatible
 * virtual DOM) with htm (tagged templates instead of JSX, so no JSX transform is needed). Every
 * component file imports `html`, the hooks and `render` from here.
 */
import htm from 'htm';
import { h, render } from 'preact';

export type { ComponentChildren, VNode } from 'preact';
export { useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
export { render };

/** `html\`<div class=${c}>…</div>\`` builds preact vnodes. */
export const html = htm.bind(h);
