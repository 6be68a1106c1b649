// Teams and memberships as the API answers them, for the settings pages' tests.
import type { Membership, Team } from '../../api/accounts'
import { alice } from '../../test/render'

export const vision: Team = { id: 4, name: 'vision', display_name: 'Vision lab', description: 'Cameras and pixels', created_at: '2026-10-01T10:00:00Z' }
export const member = (username: string, role: Membership['role']): Membership => ({ username, role, created_at: '2026-10-02T10:00:00Z' })
export const aliceIn = (role: string) => ({ ...alice, teams: [{ name: 'vision', role }] })
