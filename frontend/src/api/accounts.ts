import { del, patch, post } from './client'

export type TokenScope = 'read' | 'write'
export type Role = 'owner' | 'admin' | 'member' | 'viewer'

export const ROLES: readonly Role[] = ['owner', 'admin', 'member', 'viewer']
export const canManage = (role: string | undefined) => role === 'owner' || role === 'admin'

export interface ApiToken {
  id: number
  name: string
  /** The secret's first characters, to tell tokens apart. */
  prefix: string
  scope: TokenScope
  created_at: string
  expires_at: string | null
  last_used_at: string | null
  revoked_at: string | null
  active: boolean
}

/** A token as its creation answers: the only time the secret is sent. */
export interface IssuedToken extends ApiToken {
  token: string
}

export interface TokenCreate {
  name: string
  scope: TokenScope
  expires_in_days?: number
}

export interface Team {
  id: number
  name: string
  display_name: string
  description: string
  created_at: string
}

export interface TeamCreate {
  name: string
  display_name: string
  description: string
}

export interface Membership {
  username: string
  role: Role
  created_at: string
}

const seg = encodeURIComponent

export const tokensPath = () => 'user/tokens'
export const teamsPath = () => 'teams'
export const teamPath = (team: string) => `teams/${seg(team)}`
export const membersPath = (team: string) => `${teamPath(team)}/members`
const memberPath = (team: string, username: string) => `${membersPath(team)}/${seg(username)}`

export const createToken = (body: TokenCreate) => post<IssuedToken>(tokensPath(), body)
export const revokeToken = (id: number) => del(`${tokensPath()}/${id}`)

export const createTeam = (body: TeamCreate) => post<Team>(teamsPath(), body)
export const addMember = (team: string, username: string, role: Role) =>
  post<Membership>(membersPath(team), { username, role })
export const changeRole = (team: string, username: string, role: Role) =>
  patch<Membership>(memberPath(team, username), { role })
export const removeMember = (team: string, username: string) => del(memberPath(team, username))

