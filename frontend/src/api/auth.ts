import { get, post } from './client'

export interface TeamMembership {
  name: string
  role: string
}

export interface User {
  id: number
  username: string
  email: string
  first_name: string
  last_name: string
  is_staff: boolean
  teams: TeamMembership[]
}

export const currentUser = () => get<User>('user')
export const login = (username: string, password: string) => post<User>('auth/login', { username, password })
export const signup = (username: string, email: string, password: string) =>
  post<User>('auth/signup', { username, email, password })
export const logout = () => post<void>('auth/logout')
