// Who is signed in: identity's /v1/me, and the tenant's companies for naming them.
import { createContext, useContext } from "react";
import { get } from "./api";

export interface Me {
  id: string;
  tenant: string;
  tenant_id: string;
  username: string;
  roles: string[];
  companies: string[];
  mfa_enabled: boolean;
  session_id: string | null;
  amr: string[];
}

export interface Company {
  code: string;
  name: string;
}

export interface Session {
  me: Me;
  companies: Company[];
  signOut: () => Promise<void>;
  reload: () => Promise<void>;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession outside a signed-in page");
  return session;
}

export async function loadSession(): Promise<{ me: Me; companies: Company[] }> {
  const me = await get<Me>("/identity/v1/me");
  if (isOperator(me)) return { me, companies: [] };
  const { companies } = await get<{ companies: Company[] }>(
    `/tenants/v1/tenants/${me.tenant_id}/companies`,
  );
  return { me, companies };
}

export const isOperator = (me: Me): boolean => me.roles.includes("operator");
export const isTenantAdmin = (me: Me): boolean => me.roles.includes("tenant_admin");
export const canUpload = (me: Me): boolean =>
  me.roles.includes("tenant_admin") || me.roles.includes("data_updater");
/** Consolidated figures and every company: tenant admins and group viewers. */
export const seesWholeGroup = (me: Me): boolean =>
  me.roles.includes("tenant_admin") || me.roles.includes("group_viewer");
