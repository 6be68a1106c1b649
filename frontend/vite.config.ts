/// <reference types="vitest/config" />
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// Django serves the built UI: index.html for every page path, the assets from its static files
// under /static/ui/ (config/settings.py, STATICFILES_DIRS). In development `npm run dev`
// serves the pages and sends the API and the websockets on to a platform at FERRY_DEV_API.
const api = process.env.FERRY_DEV_API ?? 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/static/ui/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 800 },
  server: {
    proxy: {
      '/api': api,
      '/ws': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    css: false,
  },
})
