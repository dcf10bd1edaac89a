-- Speculative Edits in Neovim 0.7+: "rewrite selection with instruction" through the
-- specedit language server (`python -m lsp_server --stdio`, or `specedit serve`).
--
-- Save as ~/.config/nvim/lua/specedit.lua and in init.lua:
--   require("specedit").setup({ settings = { model = "qwen2.5-coder-0.5b-instruct" } })
-- Then select lines and press <leader>rw (or :'<,'>SpeceditRewrite [instruction]), or pick
-- "Rewrite selection with instruction…" or a preset from :'<,'>lua vim.lsp.buf.range_code_action()
-- (vim.lsp.buf.code_action() in Neovim 0.8+).
--
-- The rewrite is previewed before it lands: a diff in a vertical split fills in as the model
-- writes (the server streams partial results), then <leader>ra accepts it (or :SpeceditAccept)
-- and <leader>rr rejects it (or :SpeceditReject, which also stops a rewrite still running).
-- The presets of the code-action menu ("Add docstrings", …) are previewed the same way.
local M = {}

M.config = {
  cmd = { "python3", "-m", "lsp_server", "--stdio" },
  -- The `specedit` settings: sent as initializationOptions and workspace/didChangeConfiguration.
  settings = {
    model = "qwen2.5-coder-0.5b-instruct",
    device = "auto",
    dtype = "auto",
    method = "speculative",
    maxNewTokens = 0, -- 0: room for about twice the selection
    contextLines = 20,
    presets = { "Add docstrings", "Add type hints", "Add comments explaining the code" },
  },
  keymap = "<leader>rw", -- visual mode; false for none
  preview = true, -- false: the server applies the rewrite (a preset's too) at once, without a preview
  accept_key = "<leader>ra", -- normal mode, in the buffer and its preview while one is open
  reject_key = "<leader>rr",
}

M.status = { state = "starting" } -- the latest specedit/status, for a statusline
M.client_id = nil
M.previews = {} -- by buffer: the preview open for it
local by_token = {} -- partialResultToken -> preview
local next_token = 0

-- How the instruction is asked for; replace it to ask differently.
function M.ask_instruction()
  local instruction = vim.fn.input("Rewrite instruction: ")
  if instruction == nil or vim.trim(instruction) == "" then
    return nil
  end
  return instruction
end

local function notify(message, level)
  vim.notify("specedit: " .. message, level or vim.log.levels.INFO)
end

-- Partial results carry no `kind`; everything else is work-done progress for Neovim's handler.
-- A late one for a preview already closed is dropped.
local function on_progress(err, result, ctx, config)
  if result and type(result.value) == "table" and result.value.kind == nil
      and type(result.token) == "string" and vim.startswith(result.token, "specedit-partial-") then
    local preview = by_token[result.token]
    if preview then
      M.show_partial(preview, result.value)
    end
    return
  end
  return vim.lsp.handlers["$/progress"](err, result, ctx, config)
end

-- Neovim's capabilities, less resolving a code action's edit. The server computes a preset's
-- edit in codeAction/resolve for a client that says it can resolve `edit`, and Neovim would
-- apply that edit at once; otherwise a preset comes as the command specedit.rewriteSelection
-- with its instruction, which setup() below previews like any rewrite (or runs, preview = false).
local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  local code_action = caps.textDocument and caps.textDocument.codeAction
  if code_action then
    code_action.resolveSupport = nil
  end
  return caps
end

function M.start()
  if M.client_id and vim.lsp.get_client_by_id(M.client_id) then
    return M.client_id
  end
  M.client_id = vim.lsp.start_client({
    name = "specedit",
    cmd = M.config.cmd,
    root_dir = vim.fn.getcwd(),
    capabilities = capabilities(),
    init_options = M.config.settings,
    handlers = {
      ["specedit/status"] = function(_, status)
        M.status = status
        if status.state == "error" then
          notify(status.message or "error", vim.log.levels.ERROR)
        end
      end,
      ["$/progress"] = on_progress,
    },
  })
  return M.client_id
end

function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].buftype == "" then
    vim.lsp.buf_attach_client(bufnr, M.start())
  end
end

-- Sends `specedit.rewriteSelection` {uri, range, instruction}; the server computes the rewrite
-- and applies it with workspace/applyEdit before it answers. on_done(err, result) is optional.
function M.execute(args, bufnr, on_done)
  local client = vim.lsp.get_client_by_id(M.start())
  local params = { command = "specedit.rewriteSelection", arguments = { args } }
  client.request("workspace/executeCommand", params, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    end
    if on_done then
      on_done(err, result)
    end
  end, bufnr)
end

-- -- the preview ----------------------------------------------------------------------------

-- The buffer's lines with lines first..last (0-based, end exclusive) replaced by `text`.
local function with_region(preview, text)
  local lines = vim.list_slice(preview.lines, 1, preview.first)
  vim.list_extend(lines, vim.split(text, "\n", { plain = true }))
  if text:sub(-1) == "\n" then
    table.remove(lines) -- the empty string after the region's final newline
  end
  return vim.list_extend(lines, vim.list_slice(preview.lines, preview.last + 1))
end

local function set_preview_lines(preview, lines)
  local buf = preview.buf
  if not vim.api.nvim_buf_is_valid(buf) then
    return
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  for _, win in ipairs({ preview.source_win, preview.win }) do
    if vim.api.nvim_win_is_valid(win) then
      vim.api.nvim_win_call(win, function()
        vim.cmd("diffupdate")
      end)
    end
  end
end

-- A partial result: the rewritten region so far; the part of the original it has not reached
-- yet (by `covered`) stays below it, so the diff shows what changed so far.
function M.show_partial(preview, value)
  preview.partials = preview.partials + 1
  local text = value.text:gsub("\r\n", "\n")
  if value.range then
    preview.first, preview.last = value.range.start.line, value.range["end"].line
  end
  local rest = {}
  local region = preview.last - preview.first
  if value.covered ~= nil and value.covered ~= vim.NIL and region > 0 then
    local keep = region - math.floor(value.covered * region + 0.5)
    rest = vim.list_slice(preview.lines, preview.last - keep + 1, preview.last)
    if #rest > 0 and text ~= "" and text:sub(-1) ~= "\n" then
      text = text .. "\n"
    end
  end
  local lines = with_region(preview, text .. table.concat(rest, "\n"))
  set_preview_lines(preview, lines)
end

local function edits_of(edit, uri)
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.textDocument and change.textDocument.uri == uri then
      return change.edits
    end
  end
  return (edit.changes or {})[uri] or {}
end

function M.close_preview(bufnr)
  local preview = M.previews[bufnr]
  if not preview then
    return
  end
  M.previews[bufnr] = nil
  by_token[preview.token] = nil
  if preview.running then
    local client = vim.lsp.get_client_by_id(preview.client_id)
    if client then
      client.cancel_request(preview.request_id) -- stops the engine before its next pass
    end
  end
  if vim.api.nvim_win_is_valid(preview.win) then
    vim.api.nvim_win_close(preview.win, true)
  end
  if vim.api.nvim_win_is_valid(preview.source_win) then
    vim.api.nvim_win_call(preview.source_win, function()
      vim.cmd("diffoff")
    end)
  end
  if vim.api.nvim_buf_is_valid(bufnr) then
    for _, key in ipairs({ M.config.accept_key, M.config.reject_key }) do
      if key then
        pcall(vim.keymap.del, "n", key, { buffer = bufnr })
      end
    end
  end
end

-- Nothing changes in the buffer: the preview closes (and a running rewrite stops).
function M.reject(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local source = vim.b[bufnr].specedit_source or bufnr
  M.close_preview(source)
end

-- Applies the previewed rewrite, if the buffer is still what it was computed from.
function M.accept(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local source = vim.b[bufnr].specedit_source or bufnr
  local preview = M.previews[source]
  if not preview then
    notify("no rewrite to accept", vim.log.levels.WARN)
    return false
  end
  if preview.running then
    notify("the rewrite is still running: accept it once it is done", vim.log.levels.WARN)
    return false
  end
  if vim.api.nvim_buf_get_changedtick(source) ~= preview.changedtick then
    notify("the buffer changed since the rewrite was computed, so nothing was applied: "
      .. "reject it and run the rewrite again", vim.log.levels.WARN)
    return false
  end
  local client = vim.lsp.get_client_by_id(preview.client_id)
  local edit = preview.edit
  M.close_preview(source)
  vim.lsp.util.apply_workspace_edit(edit, client and client.offset_encoding or "utf-16")
  return true
end

local function open_preview(bufnr, first, last)
  M.close_preview(bufnr)
  local source_win = vim.api.nvim_get_current_win()
  if vim.api.nvim_win_get_buf(source_win) ~= bufnr then
    source_win = vim.fn.bufwinid(bufnr)
  end
  local preview = {
    source = bufnr,
    source_win = source_win,
    lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false),
    changedtick = vim.api.nvim_buf_get_changedtick(bufnr),
    first = first, -- the region's lines, 0-based, end exclusive
    last = last,
    partials = 0,
    running = true,
  }
  preview.buf = vim.api.nvim_create_buf(false, true)
  vim.bo[preview.buf].bufhidden = "wipe"
  vim.bo[preview.buf].filetype = vim.bo[bufnr].filetype
  vim.b[preview.buf].specedit_source = bufnr
  vim.api.nvim_buf_set_lines(preview.buf, 0, -1, false, preview.lines)
  vim.bo[preview.buf].modifiable = false
  vim.api.nvim_win_call(source_win, function()
    vim.cmd("vertical rightbelow split")
    preview.win = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(preview.win, preview.buf)
    vim.cmd("diffthis")
  end)
  vim.api.nvim_win_call(source_win, function()
    vim.cmd("diffthis")
  end)
  for _, buf in ipairs({ bufnr, preview.buf }) do
    if M.config.accept_key then
      vim.keymap.set("n", M.config.accept_key, function()
        M.accept(buf)
      end, { buffer = buf, desc = "specedit: accept the rewrite" })
    end
    if M.config.reject_key then
      vim.keymap.set("n", M.config.reject_key, function()
        M.reject(buf)
      end, { buffer = buf, desc = "specedit: reject the rewrite" })
    end
  end
  M.previews[bufnr] = preview
  return preview
end

-- Asks for the rewrite of `range` (an LSP Range) with `specedit/rewrite`, which applies nothing,
-- and previews it as it streams in. on_done(err, preview) is optional.
function M.preview(args, bufnr, on_done)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = vim.lsp.get_client_by_id(M.start())
  local range = args.range
  -- The server rewrites whole lines; a selection ending at column 0 leaves that line out.
  local last = range["end"].line + 1
  if range["end"].character == 0 and range["end"].line > range.start.line then
    last = range["end"].line
  end
  local preview = open_preview(bufnr, range.start.line, last)
  next_token = next_token + 1
  preview.token = "specedit-partial-" .. next_token
  preview.client_id = client.id
  by_token[preview.token] = preview
  local params = {
    textDocument = { uri = args.uri or vim.uri_from_bufnr(bufnr) },
    range = range,
    instruction = args.instruction,
    version = args.version, -- a preset's: the server refuses it if the buffer changed since
    partialResultToken = preview.token,
  }
  local _, request_id = client.request("specedit/rewrite", params, function(err, result)
    preview.running = false
    if M.previews[bufnr] ~= preview then
      return -- rejected meanwhile
    end
    if err then
      notify(err.message, vim.log.levels.ERROR)
      M.close_preview(bufnr)
    else
      preview.edit = result.edit
      local edits = edits_of(result.edit, params.textDocument.uri)
      if #edits == 0 then
        notify("the model left the selection as it was; nothing to change")
        M.close_preview(bufnr)
      else
        -- The exact edit, shown as it will be applied.
        set_preview_lines(preview, preview.lines)
        vim.bo[preview.buf].modifiable = true
        vim.lsp.util.apply_text_edits(edits, preview.buf, client.offset_encoding)
        vim.bo[preview.buf].modifiable = false
        vim.bo[preview.buf].modified = false
        set_preview_lines(preview, vim.api.nvim_buf_get_lines(preview.buf, 0, -1, false))
        notify(string.format("rewrite ready: %s accepts, %s rejects",
          M.config.accept_key or ":SpeceditAccept", M.config.reject_key or ":SpeceditReject"))
      end
    end
    if on_done then
      on_done(err, preview)
    end
  end, bufnr)
  preview.request_id = request_id
  return preview
end

-- Previews (or, with preview = false, applies) the rewrite of {uri, range, instruction}.
function M.rewrite(args, bufnr, on_done)
  if M.config.preview then
    return M.preview(args, bufnr, on_done)
  end
  return M.execute(args, bufnr, on_done)
end

-- Lines first..last (1-based, inclusive) of the buffer, rewritten following `instruction`.
function M.rewrite_lines(first, last, instruction, bufnr, on_done)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  return M.rewrite({
    uri = vim.uri_from_bufnr(bufnr),
    range = { start = { line = first - 1, character = 0 }, ["end"] = { line = last, character = 0 } },
    instruction = instruction or M.ask_instruction(),
  }, bufnr, on_done)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  -- The code actions' command, presets included: ask for the instruction here if it has none
  -- (the server would otherwise offer only the presets through window/showMessageRequest).
  vim.lsp.commands["specedit.rewriteSelection"] = function(command, ctx)
    local args = vim.deepcopy(command.arguments[1])
    if not args.instruction then
      args.instruction = M.ask_instruction()
      if not args.instruction then
        return
      end
    end
    M.rewrite(args, ctx.bufnr)
  end
  vim.api.nvim_create_user_command("SpeceditRewrite", function(cmd)
    local instruction = cmd.args ~= "" and cmd.args or M.ask_instruction()
    if instruction then
      M.rewrite_lines(cmd.line1, cmd.line2, instruction)
    end
  end, { range = true, nargs = "?", desc = "Rewrite the selected lines with an instruction" })
  vim.api.nvim_create_user_command("SpeceditAccept", function()
    M.accept()
  end, { desc = "Apply the previewed rewrite" })
  vim.api.nvim_create_user_command("SpeceditReject", function()
    M.reject()
  end, { desc = "Discard the previewed rewrite" })
  if M.config.keymap then
    vim.keymap.set("x", M.config.keymap, ":SpeceditRewrite<CR>", { desc = "specedit: rewrite selection" })
  end
  vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
    callback = function(ev)
      M.attach(ev.buf)
    end,
  })
  return M
end

return M
