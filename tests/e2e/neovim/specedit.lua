-- Speculative Edits in Neovim 0.7+: "rewrite selection with instruction" through the
-- specedit language server (`python -m lsp_server --stdio`, or `specedit serve`).
--
-- Save as ~/.config/nvim/lua/specedit.lua and in init.lua:
--   require("specedit").setup({ settings = { model = "qwen2.5-coder-0.5b-instruct" } })
-- Then select lines and press <leader>rw (or :'<,'>SpeceditRewrite [instruction]), or pick
-- "Rewrite selection with instruction…" or a preset from :'<,'>lua vim.lsp.buf.range_code_action()
-- (vim.lsp.buf.code_action() in Neovim 0.8+).
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
}

M.status = { state = "starting" } -- the latest specedit/status, for a statusline
M.client_id = nil

-- How the instruction is asked for; replace it to ask differently.
function M.ask_instruction()
  local instruction = vim.fn.input("Rewrite instruction: ")
  if instruction == nil or vim.trim(instruction) == "" then
    return nil
  end
  return instruction
end

function M.start()
  if M.client_id and vim.lsp.get_client_by_id(M.client_id) then
    return M.client_id
  end
  M.client_id = vim.lsp.start_client({
    name = "specedit",
    cmd = M.config.cmd,
    root_dir = vim.fn.getcwd(),
    init_options = M.config.settings,
    handlers = {
      ["specedit/status"] = function(_, status)
        M.status = status
        if status.state == "error" then
          vim.notify("specedit: " .. (status.message or "error"), vim.log.levels.ERROR)
        end
      end,
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
      vim.notify("specedit: " .. err.message, vim.log.levels.ERROR)
    end
    if on_done then
      on_done(err, result)
    end
  end, bufnr)
end

-- Lines first..last (1-based, inclusive) of the buffer, rewritten following `instruction`.
function M.rewrite_lines(first, last, instruction, bufnr, on_done)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  M.execute({
    uri = vim.uri_from_bufnr(bufnr),
    range = { start = { line = first - 1, character = 0 }, ["end"] = { line = last, character = 0 } },
    instruction = instruction or M.ask_instruction(),
  }, bufnr, on_done)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  -- The code actions' command: ask for the instruction here (the server would otherwise
  -- offer only the presets through window/showMessageRequest).
  vim.lsp.commands["specedit.rewriteSelection"] = function(command, ctx)
    local args = vim.deepcopy(command.arguments[1])
    if not args.instruction then
      args.instruction = M.ask_instruction()
      if not args.instruction then
        return
      end
    end
    M.execute(args, ctx.bufnr)
  end
  vim.api.nvim_create_user_command("SpeceditRewrite", function(cmd)
    local instruction = cmd.args ~= "" and cmd.args or M.ask_instruction()
    if instruction then
      M.rewrite_lines(cmd.line1, cmd.line2, instruction)
    end
  end, { range = true, nargs = "?", desc = "Rewrite the selected lines with an instruction" })
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
