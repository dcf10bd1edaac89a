-- Headless driver for test_neovim.py: loads the user config (specedit.lua, as in the README),
-- then does what a user would: open the file, select lines, run a code action (SPECEDIT_VIA:
-- "instruction", "Rewrite selection with instruction…" with an instruction; "preset", the
-- preset named by the instruction, picked in Neovim's own code-action menu), wait for the
-- preview to be complete, press the accept or the reject mapping (SPECEDIT_ACTION), :write,
-- quit. With SPECEDIT_PREVIEW=0 (the config's preview = false) there is no preview: the
-- driver waits for the rewrite to land. Only the prompts are scripted (the instruction, the
-- menu's choice), since vim.fn.input and vim.ui.select cannot be typed into headless. Writes
-- what it saw to SPECEDIT_REPORT (JSON) and exits non-zero with a reason on failure.
local env = vim.env
package.path = env.SPECEDIT_TEST_DIR .. "/?.lua;" .. package.path

local function fail(message)
  io.stderr:write("nvim e2e: " .. message .. "\n")
  vim.cmd("cquit 3")
end

local specedit = require("specedit").setup({
  cmd = vim.json.decode(env.SPECEDIT_CMD),
  settings = vim.json.decode(env.SPECEDIT_SETTINGS),
  preview = env.SPECEDIT_PREVIEW ~= "0",
})
specedit.ask_instruction = function()
  return env.SPECEDIT_INSTRUCTION
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
local original = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)

if env.SPECEDIT_VIA == "preset" then
  -- Neovim's own code-action menu (it resolves the action with the server, then runs what it
  -- got); the menu's choice is the preset's title.
  local offered = {}
  vim.ui.select = function(items, _, on_choice)
    for i, item in ipairs(items) do
      local candidate = item.action or item[2] -- {client_id, action} up to 0.9, then {ctx, action}
      table.insert(offered, candidate.title)
      if candidate.title == env.SPECEDIT_INSTRUCTION then
        if candidate.edit then
          fail("the preset came with its edit: it would land without a preview")
        end
        return on_choice(item, i)
      end
    end
    fail("no preset " .. env.SPECEDIT_INSTRUCTION .. " in the menu: " .. vim.inspect(offered))
  end
  if vim.lsp.buf.range_code_action then -- 0.7 (the marks '< and '> set above)
    vim.lsp.buf.range_code_action({ diagnostics = {} })
  else
    local last_line = tonumber(last)
    local last_col = #vim.api.nvim_buf_get_lines(bufnr, last_line - 1, last_line, false)[1]
    vim.lsp.buf.code_action({ context = { diagnostics = {} },
      range = { start = { tonumber(first), 0 }, ["end"] = { last_line, last_col } } })
  end
else
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
  -- What Neovim's code-action menu does with an action that has a command: here, a preview.
  vim.lsp.commands[action.command.command](action.command, { bufnr = bufnr, client_id = specedit.client_id })
end

if env.SPECEDIT_PREVIEW == "0" then
  -- No preview: the server applies the rewrite itself (workspace/applyEdit).
  if not vim.wait(180000, function()
    return not vim.deep_equal(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), original)
  end, 50) then
    fail("the rewrite did not land")
  end
  local file = io.open(env.SPECEDIT_REPORT, "w")
  file:write(vim.json.encode({ windows = #vim.api.nvim_list_wins(), previews = vim.tbl_count(specedit.previews) }))
  file:close()
  vim.cmd("write")
  vim.cmd("qall!")
  return
end

if not vim.wait(30000, function() return specedit.previews[bufnr] ~= nil end, 50) then
  fail("no preview opened")
end
local preview = specedit.previews[bufnr]
if not vim.wait(180000, function() return not preview.running end, 50) then
  fail("no answer to specedit/rewrite")
end
if specedit.previews[bufnr] ~= preview then
  fail("the preview closed before it was accepted or rejected (failed or unchanged?)")
end
local report = {
  partials = preview.partials,
  preview = vim.api.nvim_buf_get_lines(preview.buf, 0, -1, false),
  windows = #vim.api.nvim_list_wins(),
  diff = vim.api.nvim_win_get_option(preview.win, "diff"),
  unchanged_before = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
    == table.concat(preview.lines, "\n"),
}

-- Press the mapping, as a user would, in the preview window.
vim.api.nvim_set_current_win(preview.win)
local key = env.SPECEDIT_ACTION == "accept" and specedit.config.accept_key or specedit.config.reject_key
key = key:gsub("<leader>", vim.g.mapleader or "\\")
vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(key, true, false, true), "mx", false)
if specedit.previews[bufnr] then
  fail("the preview is still open after " .. env.SPECEDIT_ACTION)
end
report.windows_after = #vim.api.nvim_list_wins()
report.preview_gone = not vim.api.nvim_buf_is_valid(preview.buf)

local file = io.open(env.SPECEDIT_REPORT, "w")
file:write(vim.json.encode(report))
file:close()
vim.api.nvim_set_current_buf(bufnr)
vim.cmd("write")
vim.cmd("qall!")
