// The few line icons the app uses (24×24, stroke = currentColor).
import type { JSX } from 'preact';

const Icon = ({ d, size = 18 }: { d: string; size?: number }): JSX.Element => (
  <svg width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2"
    stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
    <path d={d} />
  </svg>
);

export const IconPlus = (): JSX.Element => <Icon d="M12 5v14M5 12h14" />;
export const IconMenu = (): JSX.Element => <Icon d="M4 6h16M4 12h16M4 18h16" />;
export const IconSend = (): JSX.Element => <Icon d="M12 19V5M5 12l7-7 7 7" />;
export const IconStop = (): JSX.Element => <Icon d="M7 7h10v10H7z" />;
export const IconCopy = (): JSX.Element => <Icon d="M9 9h11v11H9zM5 15H4V4h11v1" />;
export const IconEdit = (): JSX.Element => <Icon d="M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4" />;
export const IconRetry = (): JSX.Element => <Icon d="M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7" />;
export const IconTrash = (): JSX.Element => <Icon d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3" />;
export const IconClip = (): JSX.Element => <Icon d="M21 12l-8.5 8.5a5 5 0 0 1-7-7L14 5a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 8" />;
export const IconAtom = (): JSX.Element => <Icon d="M12 12h.01M12 3c4 0 4 18 0 18S8 3 12 3zM4.2 7.5c2-3.5 17.6 5.5 15.6 9S2.2 11 4.2 7.5zM4.2 16.5c-2-3.5 13.6-12.5 15.6-9s-13.6 12.5-15.6 9z" />;
export const IconGear = (): JSX.Element => <Icon d="M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z" />;
export const IconSun = (): JSX.Element => <Icon d="M12 17a5 5 0 1 0 0-10 5 5 0 0 0 0 10zM12 1v2M12 21v2M4.2 4.2l1.4 1.4M18.4 18.4l1.4 1.4M1 12h2M21 12h2M4.2 19.8l1.4-1.4M18.4 5.6l1.4-1.4" />;
export const IconMoon = (): JSX.Element => <Icon d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z" />;
export const IconAuto = (): JSX.Element => <Icon d="M12 3a9 9 0 1 0 0 18V3z M12 3a9 9 0 0 1 0 18" />;
export const IconChevron = ({ open }: { open: boolean }): JSX.Element => <Icon d={open ? 'M6 9l6 6 6-6' : 'M9 6l6 6-6 6'} size={14} />;
