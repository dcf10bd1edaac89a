-- Headless driver for test_neovim.py: loads the user config (specedit.lua, as in the README),
-- then does what a user would: open the file, select lines, run the code action with an
-- instruction, wait for the edit, :write, quit. Only the instruction prompt is scripted,
-- since vim.fn.input cannot be typed into headless. Exits non-zero with a reason on failure.
local env = vim.env
package.path = env.SPECEDIT_TEST_DIR .. "/?.lua;" .. package.path

local function fail(message)
  io.stderr:write("nvim e2e: " .. message .. "\n")
  vim.cmd("cquit 3")
end

local specedit = require("specedit").setup({
  cmd = vim.json.decode(env.SPECEDIT_CMD),
  settings = vim.json.decode(env.SPECEDIT_SETTINGS),
})
specedit.ask_instruction = function()
  return env.SPECEDIT_INSTRUCTION
end

-- Learn when the command's answer arrives (the server applies the edit before answering).
local finished
local execute = specedit.execute
specedit.execute = function(args, bufnr, on_done)
  execute(args, bufnr, function(err, result)
    finished = { err = err, result = result }
    if on_done then
      on_done(err, result)
    end
  end)
end

vim.cmd("edit " .. vim.fn.fnameescape(env.SPECEDIT_FILE))
local bufnr = vim.api.nvim_get_current_buf()
local ok = vim.wait(180000, function()
  return specedit.status.state == "ready" or specedit.status.state == "error"
end, 50)
if not ok or specedit.status.state ~= "ready" then
  fail("the server did not get ready: " .. vim.inspect(specedit.status))
end

-- Select the lines charwise from the first column to the end of the last line, then leave
-- visual mode, which sets the '< and '> marks that range code actions read.
local first, last = env.SPECEDIT_LINES:match("(%d+),(%d+)")
vim.cmd(string.format("normal! %sG0v%sG$\27", first, last))
local params = vim.lsp.util.make_given_range_params(nil, nil, bufnr, "utf-16")
params.context = { diagnostics = {} }
local responses = vim.lsp.buf_request_sync(bufnr, "textDocument/codeAction", params, 30000)
local action
for _, response in pairs(responses or {}) do
  for _, candidate in ipairs(response.result or {}) do
    if candidate.title == "Rewrite selection with instruction…" then
      action = candidate
    end
  end
end
if not action then
  fail("no rewrite code action: " .. vim.inspect(responses))
end

-- What Neovim's code-action menu does with an action that has a command.
vim.lsp.commands[action.command.command](action.command, { bufnr = bufnr, client_id = specedit.client_id })
if not vim.wait(180000, function() return finished ~= nil end, 50) then
  fail("no answer to workspace/executeCommand")
end
if finished.err or not (finished.result and finished.result.applied) then
  fail("the rewrite was not applied: " .. vim.inspect(finished))
end
vim.cmd("write")
vim.cmd("qall!")
