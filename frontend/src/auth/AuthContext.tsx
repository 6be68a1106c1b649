import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react'
import * as auth from '../api/auth'
import { ApiError } from '../api/client'

type AuthState =
  | { status: 'loading' }
  | { status: 'anonymous' }
  | { status: 'signed-in'; user: auth.User }
  | { status: 'error'; error: ApiError }

interface AuthValue {
  state: AuthState
  /** The signed-in user; only inside pages behind RequireAuth. */
  user: auth.User
  signIn(username: string, password: string): Promise<void>
  signUp(username: string, email: string, password: string): Promise<void>
  signOut(): Promise<void>
  refresh(): Promise<void>
}

const AuthContext = createContext<AuthValue | null>(null)

const signedIn = (user: auth.User): AuthState => ({ status: 'signed-in', user })

function notSignedIn(error: unknown): AuthState {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return { status: 'anonymous' }
  return { status: 'error', error: error instanceof ApiError ? error : new ApiError(0, 'error', String(error)) }
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<AuthState>({ status: 'loading' })

  const refresh = useCallback(() => auth.currentUser().then(signedIn, notSignedIn).then(setState), [])

  useEffect(() => {
    auth.currentUser().then(signedIn, notSignedIn).then(setState)
  }, [])

  const value = useMemo<AuthValue>(
    () => ({
      state,
      get user() {
        if (state.status !== 'signed-in') throw new Error('no user is signed in')
        return state.user
      },
      async signIn(username, password) {
        setState({ status: 'signed-in', user: await auth.login(username, password) })
      },
      async signUp(username, email, password) {
        setState({ status: 'signed-in', user: await auth.signup(username, email, password) })
      },
      async signOut() {
        await auth.logout()
        setState({ status: 'anonymous' })
      },
      refresh,
    }),
    [state, refresh],
  )
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext)
  if (!value) throw new Error('useAuth outside AuthProvider')
  return value
}
